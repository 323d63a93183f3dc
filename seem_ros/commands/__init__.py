"""Sub-commands of ``seem-ros`` (discovered by :mod:`seem_ros.cli`)."""
