"""The builder's DSL: the app data model kept per chat (API.md §2, docs/dsl.md)."""
