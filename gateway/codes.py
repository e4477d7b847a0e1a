"""The catalogue of error codes a sender (or an operator) can receive, with the HTTP status class.

Codes are the product's contract with senders: never rename one; add freely.
``docs/error-codes.md`` is generated from this table (``saisine codes``), and a
test checks that every code of the rejection layers has at least one fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Layer(StrEnum):
    TRANSPORT = "transport"  # before parsing: size, content type, encoding
    PARSER = "parser"  # the hardened parser refused the document
    SOAP = "soap"  # the SOAP envelope itself is wrong
    FORMAT = "format"  # well-formed, but not a format we know
    SCHEMA = "schema"  # XSD validation
    RULE = "rule"  # business rules
    IDEMPOTENCY = "idempotency"
    INTERNAL = "internal"  # our fault: the message is kept as failed, for reprocessing
    OPERATOR = "operator"  # the operators' API (replays): about a request, not a message
    ACCESS = "access"  # who is calling: credentials, units, roles, rate limits


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    layer: Layer
    http_status: int
    summary: str


_CODES = [
    Code("BODY_TOO_LARGE", Layer.TRANSPORT, 413, "The body is larger than the configured cap."),
    Code("BODY_EMPTY", Layer.TRANSPORT, 400, "The body is empty."),
    Code("CONTENT_TYPE_UNSUPPORTED", Layer.TRANSPORT, 415, "The content type is not XML."),
    Code("XML_ENCODING_UNSUPPORTED", Layer.PARSER, 400, "Only UTF-8 is accepted."),
    Code("XML_NOT_WELL_FORMED", Layer.PARSER, 400, "The document is not well-formed XML."),
    Code("XML_DOCTYPE_FORBIDDEN", Layer.PARSER, 400, "A DOCTYPE (internal or external DTD)."),
    Code(
        "XML_ENTITY_FORBIDDEN",
        Layer.PARSER,
        400,
        "An entity reference other than the five predefined ones.",
    ),
    Code("XML_PROCESSING_INSTRUCTION_FORBIDDEN", Layer.PARSER, 400, "A processing instruction."),
    Code("XML_XINCLUDE_FORBIDDEN", Layer.PARSER, 400, "An XInclude element."),
    Code(
        "XML_SCHEMA_LOCATION_FORBIDDEN",
        Layer.PARSER,
        400,
        "A schemaLocation hint pointing elsewhere.",
    ),
    Code("XML_TOO_DEEP", Layer.PARSER, 400, "Elements nested deeper than the limit."),
    Code("XML_TOO_MANY_ELEMENTS", Layer.PARSER, 400, "More elements than the limit."),
    Code(
        "XML_TOO_MANY_ATTRIBUTES",
        Layer.PARSER,
        400,
        "An element with more attributes than the limit.",
    ),
    Code("XML_TOO_MANY_NAMESPACES", Layer.PARSER, 400, "More namespace declarations than the limit."),
    Code(
        "XML_NAME_TOO_LONG",
        Layer.PARSER,
        400,
        "An element or attribute name longer than the limit.",
    ),
    # The SOAP envelope (gateway/soap.py): answered as a SOAP 1.1 Fault (HTTP 500, as SOAP 1.1
    # requires) whose detail lists the code; the status here is what the rejection record keeps.
    Code("SOAP_NOT_ENVELOPE", Layer.SOAP, 400, "The SOAP request is not a SOAP Envelope."),
    Code("SOAP_VERSION_MISMATCH", Layer.SOAP, 400, "The Envelope is not SOAP 1.1 (VersionMismatch)."),
    Code("SOAP_BODY_MISSING", Layer.SOAP, 400, "The Envelope has no Body (after an optional Header)."),
    Code("SOAP_ENVELOPE_INVALID", Layer.SOAP, 400, "Something other than Header and Body in the Envelope."),
    Code("SOAP_BODY_EMPTY", Layer.SOAP, 400, "The Body has no element."),
    Code("SOAP_BODY_MULTIPLE", Layer.SOAP, 400, "The Body has more than one element."),
    Code("SOAP_OPERATION_UNKNOWN", Layer.SOAP, 400, "The Body's element is not an operation of the service."),
    Code(
        "SOAP_ACTION_MISMATCH",
        Layer.SOAP,
        400,
        "The SOAPAction HTTP header names another operation than the Body.",
    ),
    Code(
        "SOAP_MUST_UNDERSTAND",
        Layer.SOAP,
        400,
        "A header marked mustUnderstand that the gateway does not understand (MustUnderstand fault).",
    ),
    Code("SOAP_HEADER_TOO_LARGE", Layer.SOAP, 413, "The SOAP Header is larger than the limit."),
    Code("SOAP_CLIENT_ERROR", Layer.SOAP, 400, "A SOAP Client fault without a more specific code."),
    Code("SOAP_SERVER_ERROR", Layer.SOAP, 500, "A SOAP Server fault: the sender may retry later."),
    Code("RECEIPT_NOT_FOUND", Layer.SOAP, 404, "GetReceiptStatus for a receipt id that does not exist."),
    Code(
        "FORMAT_UNKNOWN",
        Layer.FORMAT,
        422,
        "The root element is not a message format of this agency.",
    ),
    Code("SCHEMA_ELEMENT_MISSING", Layer.SCHEMA, 422, "A required element is missing."),
    Code("SCHEMA_ELEMENT_UNEXPECTED", Layer.SCHEMA, 422, "An element is not expected here."),
    Code("SCHEMA_ATTRIBUTE_MISSING", Layer.SCHEMA, 422, "A required attribute is missing."),
    Code("SCHEMA_ATTRIBUTE_UNEXPECTED", Layer.SCHEMA, 422, "An attribute is not allowed here."),
    Code("SCHEMA_VALUE_INVALID", Layer.SCHEMA, 422, "A value does not match its type."),
    Code("SCHEMA_INVALID", Layer.SCHEMA, 422, "Another schema violation."),
    Code("NATINF_UNKNOWN", Layer.RULE, 422, "The NATINF code is not in the reference list."),
    Code("NATINF_NOT_IN_FORCE", Layer.RULE, 422, "The NATINF code is no longer in force."),
    Code(
        "NATINF_NATURE_MISMATCH",
        Layer.RULE,
        422,
        "The declared nature differs from the reference list.",
    ),
    Code("INSEE_COMMUNE_INVALID", Layer.RULE, 422, "Not a well-formed INSEE commune code."),
    Code("DATE_FAITS_END_BEFORE_START", Layer.RULE, 422, "The faits end before they start."),
    Code("DATE_FAITS_AFTER_SAISINE", Layer.RULE, 422, "The faits start after the saisine."),
    Code("DATE_SAISINE_AFTER_SENT", Layer.RULE, 422, "The saisine is after the message was sent."),
    Code("DATE_IN_FUTURE", Layer.RULE, 422, "A date is in the future beyond the allowed clock skew."),
    Code(
        "DATE_LOCAL_NONEXISTENT",
        Layer.RULE,
        422,
        "A local date-time (no offset) in the hour skipped when clocks go forward.",
    ),
    Code(
        "DATE_LOCAL_DST_MISMATCH",
        Layer.RULE,
        422,
        "A local date-time's summer/winter time indicator is impossible on its date.",
    ),
    Code("DATE_GAV_END_BEFORE_START", Layer.RULE, 422, "A garde à vue ends before it starts."),
    Code(
        "DATE_GAV_EXTENSION_OUTSIDE",
        Layer.RULE,
        422,
        "A garde à vue extension is outside its period.",
    ),
    Code("REF_PERSON_UNRESOLVED", Layer.RULE, 422, "A reference to a person that is not declared."),
    Code(
        "REF_INFRACTION_UNRESOLVED",
        Layer.RULE,
        422,
        "A reference to an offence that is not declared.",
    ),
    Code("REF_DUPLICATE_ID", Layer.RULE, 422, "Two persons or offences share an identifier."),
    Code("DUPLICATE_NUMBER", Layer.RULE, 422, "Two scellés or pièces share a number."),
    Code(
        "CHARGE_NOT_MIS_EN_CAUSE",
        Layer.RULE,
        422,
        "A person charged with an offence is not a mis en cause.",
    ),
    Code(
        "GAV_PERSON_INVALID",
        Layer.RULE,
        422,
        "A garde à vue or arrest for someone who is not a natural mis en cause.",
    ),
    Code("INFRACTION_MISSING", Layer.RULE, 422, "An initial procedure without any offence."),
    Code("MIS_EN_CAUSE_MISSING", Layer.RULE, 422, "No mis en cause and no reason why."),
    Code("SIREN_CHECKSUM_INVALID", Layer.RULE, 422, "The SIREN fails its Luhn checksum."),
    Code("SIRET_CHECKSUM_INVALID", Layer.RULE, 422, "The SIRET fails its Luhn checksum."),
    Code("SIRET_SIREN_MISMATCH", Layer.RULE, 422, "The SIRET does not start with the SIREN."),
    Code("PIECE_DIGEST_MISMATCH", Layer.RULE, 422, "Inline content does not match its SHA-256."),
    Code("PIECE_SIZE_MISMATCH", Layer.RULE, 422, "Inline content does not match its declared size."),
    Code(
        "INTERNAL_ERROR",
        Layer.INTERNAL,
        500,
        "The gateway failed on this message; it is kept for reprocessing.",
    ),
    Code(
        "MESSAGE_ID_CONFLICT",
        Layer.IDEMPOTENCY,
        409,
        "This message id was already accepted with other content.",
    ),
    Code("REPLAY_INVALID", Layer.OPERATOR, 422, "A replay request that cannot be carried out as asked."),
    Code("REPLAY_REASON_REQUIRED", Layer.OPERATOR, 422, "A replay needs a reason: it is recorded."),
    Code("REPLAY_NOTHING_SELECTED", Layer.OPERATOR, 422, "No message matches the replay's selection."),
    Code("REPLAY_UNKNOWN", Layer.OPERATOR, 404, "No replay has this id."),
    Code(
        "REPLAY_STATE_CONFLICT",
        Layer.OPERATOR,
        409,
        "Not possible in the replay's state (pause, resume or cancel).",
    ),
    Code("MESSAGE_UNKNOWN", Layer.OPERATOR, 404, "No message has this receipt id."),
    Code("CURSOR_INVALID", Layer.OPERATOR, 400, "A page cursor this API did not give (or altered)."),
    Code("AUTH_REQUIRED", Layer.ACCESS, 401, "No credentials: send a sender token or a client certificate."),
    Code("AUTH_INVALID", Layer.ACCESS, 401, "The token or certificate is unknown, expired or revoked."),
    Code(
        "IDENTITY_HEADER_UNTRUSTED",
        Layer.ACCESS,
        403,
        "A client certificate header from an address that is not the gateway's TLS proxy.",
    ),
    Code("AGENCY_NOT_ALLOWED", Layer.ACCESS, 403, "The credential belongs to another agency."),
    Code(
        "UNIT_NOT_ALLOWED", Layer.ACCESS, 403, "The message declares a unit the credential may not send for."
    ),
    Code("RATE_LIMITED", Layer.ACCESS, 429, "Too many messages from this sender: wait for Retry-After."),
    Code("OPERATOR_AUTH_REQUIRED", Layer.ACCESS, 401, "An operator token or a console session is needed."),
    Code("ROLE_FORBIDDEN", Layer.ACCESS, 403, "The operator's role does not allow this."),
    Code("SENDER_INVALID", Layer.OPERATOR, 422, "A sender credential that cannot be made as asked."),
    Code("SENDER_UNKNOWN", Layer.OPERATOR, 404, "No active sender credential has this id."),
    Code("CSRF_INVALID", Layer.ACCESS, 403, "A console form without its session's CSRF token."),
]

CODES: dict[str, Code] = {c.code: c for c in _CODES}
