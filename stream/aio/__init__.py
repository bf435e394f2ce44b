"""ILP transports over asyncio, thin adapters around the sans-I/O codecs.

plugin         the `IlpLink` interface (send Prepares, receive them through one handler) and expiry rules
btp_client     `BtpClient`: a BTP 2.0 client with authentication, IL-DCP and reconnection
btp_server     `BtpServer`: a mini-accounts-style BTP endpoint with per-client accounts
btp_session    one BTP websocket: request correlation and incoming Prepares (shared by both)
accounts       mini-accounts rules: account names, pinned tokens, routing by address
"""
