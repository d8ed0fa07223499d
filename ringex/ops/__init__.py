"""Running an exchange: the ``supervisor`` of ``ringex run``, the data directory
(``datadir``), accounts and pending transfers (``accounts``) and the ``demo``."""
