"""Finding, explaining and replaying failed messages (issue "Replay and the operator console").
Not built yet: the folder holds its place in the design."""
