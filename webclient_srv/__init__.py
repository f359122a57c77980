"""The browser application that signs users in and edits movies."""
