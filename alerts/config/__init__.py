"""Configuration: the YAML schema and its checks (file:line errors), and the one Settings of the process."""
