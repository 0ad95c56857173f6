"""The ground floor: torch-free helpers every layer may use. `numbers` checks numeric options, `files` reads and
claims files and directories, `locate` finds a pipeline (a directory, a shipped name or a Hub id).

Every check raises `ValueError` worded `<what was wrong>; <what is allowed>`, which the CLI prints as
`crocodil <command>: error: <message>` with exit status 2.
"""
