"""The crgrpc library: targets, channels, auth, schema, codec, invocation.

Nothing under core imports typer or rich or reads CLI objects.
"""
