"""The processes the server starts: what environment they inherit (``environment``) and how
they are made to die with the server, even when it is killed with SIGKILL (``lifetime``,
``guard``). See docs/security.md, "Processes"."""
