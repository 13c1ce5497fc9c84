"""The ``sessionscope`` commands by concern; ``sessionscope.cli`` registers them on one app."""
