"""recharge-harness: build, boot and test Linux 6.12 with the memcg recharging series."""

__version__ = "0.1.0"
