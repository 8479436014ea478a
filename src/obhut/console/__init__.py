"""The staff console (`/console`) and the customers' privacy centre (`/privacy`): server-rendered pages that
call the JSON API in-process, so every page has the API's access decisions, log entries and messages."""
