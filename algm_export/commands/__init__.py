"""The handlers of ``algm-export``'s pipeline subcommands (export, build, verify, predict): the top of the import
graph, imported only by the CLI, by name (``cli.COMMANDS``). The other subcommands' handlers live with their
capability: ``evaluation.command``, ``bench``, ``serving.repository``, ``serving.server``."""
