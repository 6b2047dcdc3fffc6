"""The SQLite state store: schema, migrations, writers and read models. Imports nothing of ours but itself."""
