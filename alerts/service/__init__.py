"""The service glue: the pipeline composed of the packages, the runtime, the CLI and the supervisor."""
