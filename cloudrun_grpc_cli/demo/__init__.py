"""The bundled Echo service, its generated code, and the offline demo.

Nothing here is needed to make calls; it is imported only by `serve`,
`demo` and the tests.
"""
