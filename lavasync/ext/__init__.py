"""Optional integrations, each behind its own extra; the core never imports them.

* :mod:`lavasync.ext.gateway`: a small synchronous Discord gateway shard (no extra needed);
* :mod:`lavasync.ext.discordpy`: discord.py 2.x (``lavasync[discordpy]``);
* :mod:`lavasync.ext.hikari`: hikari (``lavasync[hikari]``);
* :mod:`lavasync.ext.prometheus`: metrics for prometheus_client (``lavasync[prometheus]``).
"""
