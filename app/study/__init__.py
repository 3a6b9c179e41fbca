"""Reader studies: configuration, assignments, answers, the reader/owner server and exports."""
