"""`python -m edge_agent.config > config.yaml`: the documented default config file."""

from edge_agent.config.render import render_default_yaml

print(render_default_yaml(), end="")
