"""pbx-connector: keeps a phone system's users, phonebooks and speed dials in sync with
the directories a company already has."""
