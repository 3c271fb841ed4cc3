"""Personal context: the SQLite store, importers and retrieval for prompts.

* ``api``: the shared contract (``NewItem``, ``Item``, ``Hit``, ``Retrieved``, kinds);
* ``store``: ``ContextStore``, the one interface the agent uses;
* ``limits``: the documented limits and the validation naming bad fields;
* ``schema`` / ``db``: tables, FTS5 index and triggers, migrations; engine and pragmas;
* ``query`` / ``ranking``: safe FTS5 expressions; bounded-work BM25 + recency ranking;
* ``retrieval``: packing items into a prompt block within a token budget;
* ``codec``: rows, items and the JSON lines export format;
* ``importers``: mbox, iCalendar, vCard, notes folders, JSON lines (streaming);
* ``commands``: the ``edge-agent context`` subcommands.
"""
