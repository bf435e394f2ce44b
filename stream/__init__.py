"""A sans-I/O Interledger stack: OER, ILPv4, IL-DCP, BTP, STREAM; asyncio adapters in ``stream.aio``."""
