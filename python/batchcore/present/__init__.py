"""How plain records look to people: text tables and invariance classes (:mod:`.text`), matplotlib panels
(:mod:`.plots`, never pyplot's state), progress on the terminal (:mod:`.progress`). Nothing here knows a
model or a backend: it renders dicts and lists, so every layer above may use it."""
