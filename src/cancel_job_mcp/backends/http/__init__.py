"""The HTTP layer every hosted backend shares: its client (`client`: one pool, auth, retries, the error
table), bounded answers (`answer`), checked payloads (`payload`), secrets kept out of every text
(`credentials`), checked request parts (`checks`), the common cancel and paging flows (`flows`), and
the base class of the provider backends (`hosted`)."""
