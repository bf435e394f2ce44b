"""Loading the JS-produced vectors of tests/vectors/ and turning their JSON objects into codec objects.

Conventions of the files: binary values are hex strings (base64 in the RFC fixtures), 64-bit integers are
decimal strings, timestamps ISO 8601 UTC with milliseconds.
"""

import base64
import functools
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from _pytest.mark import ParameterSet

from stream import btp, frames, ilp
from stream.packet import StreamPacket

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"

Json = Any


@functools.cache
def load(name: str) -> Json:
    return json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))


def cases(
    name: str, *path: str, id_key: str = "name", where: Callable[[Json], bool] | None = None
) -> list[ParameterSet]:
    """One pytest param per item of the list at `path` in vector file `name` (those `where` accepts),
    each with a readable id."""
    node = load(name)
    for key in path:
        node = node[key]
    return [pytest.param(item, id=str(item[id_key])) for item in node if where is None or where(item)]


def unhex(text: str) -> bytes:
    return bytes.fromhex(text)


def iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def binary(value: str | dict[str, str]) -> bytes:
    """`{"hex": ...}` in the JS-generated files, a base64 string in the RFC fixtures."""
    return unhex(value["hex"]) if isinstance(value, dict) else base64.b64decode(value, validate=True)


_FRAME_BUILDERS: dict[str, Callable[[Json], frames.Frame]] = {
    "ConnectionClose": lambda f: frames.ConnectionClose(f["errorCode"], f["errorMessage"]),
    "ConnectionNewAddress": lambda f: frames.ConnectionNewAddress(f["sourceAccount"]),
    "ConnectionMaxData": lambda f: frames.ConnectionMaxData(int(f["maxOffset"])),
    "ConnectionDataBlocked": lambda f: frames.ConnectionDataBlocked(int(f["maxOffset"])),
    "ConnectionMaxStreamId": lambda f: frames.ConnectionMaxStreamId(int(f["maxStreamId"])),
    "ConnectionStreamIdBlocked": lambda f: frames.ConnectionStreamIdBlocked(int(f["maxStreamId"])),
    "ConnectionAssetDetails": lambda f: frames.ConnectionAssetDetails(
        f["sourceAssetCode"], f["sourceAssetScale"]
    ),
    "StreamClose": lambda f: frames.StreamClose(int(f["streamId"]), f["errorCode"], f["errorMessage"]),
    "StreamMoney": lambda f: frames.StreamMoney(int(f["streamId"]), int(f["shares"])),
    "StreamMaxMoney": lambda f: frames.StreamMaxMoney(
        int(f["streamId"]), int(f["receiveMax"]), int(f["totalReceived"])
    ),
    "StreamMoneyBlocked": lambda f: frames.StreamMoneyBlocked(
        int(f["streamId"]), int(f["sendMax"]), int(f["totalSent"])
    ),
    "StreamData": lambda f: frames.StreamData(int(f["streamId"]), int(f["offset"]), binary(f["data"])),
    "StreamMaxData": lambda f: frames.StreamMaxData(int(f["streamId"]), int(f["maxOffset"])),
    "StreamDataBlocked": lambda f: frames.StreamDataBlocked(int(f["streamId"]), int(f["maxOffset"])),
    "StreamReceipt": lambda f: frames.StreamReceipt(int(f["streamId"]), binary(f["receipt"])),
}


def frame_from_json(obj: Json) -> frames.Frame:
    frame = _FRAME_BUILDERS[obj["name"]](obj)
    assert obj["type"] == frame.TYPE, f"{obj['name']} is type {frame.TYPE}, the vector says {obj['type']}"
    return frame


def stream_packet_from_json(obj: Json) -> StreamPacket:
    """Accepts both the JS names (ilpPacketType, prepareAmount) and the RFC fixtures' (packetType, amount)."""
    return StreamPacket(
        sequence=int(obj["sequence"]),
        ilp_packet_type=ilp.IlpPacketType(obj.get("ilpPacketType", obj.get("packetType"))),
        prepare_amount=int(obj.get("prepareAmount", obj.get("amount"))),
        frames=tuple(frame_from_json(frame) for frame in obj["frames"]),
    )


def prepare_from_json(obj: Json) -> ilp.Prepare:
    return ilp.Prepare(
        amount=int(obj["amount"]),
        expires_at=iso(obj["expiresAt"]),
        execution_condition=unhex(obj["executionCondition"]),
        destination=obj["destination"],
        data=unhex(obj["data"] if "data" in obj else obj["streamEncryptedHex"]),
    )


def reject_from_json(obj: Json) -> ilp.Reject:
    return ilp.Reject(
        code=obj["code"],
        triggered_by=obj["triggeredBy"],
        message=obj["message"],
        data=unhex(obj["data"] if "data" in obj else obj["dataHex"]),
    )


def _protocol_data(entries: Json) -> btp.ProtocolData:
    return tuple(
        btp.ProtocolDataEntry(e["protocolName"], e["contentType"], binary(e["data"])) for e in entries
    )


def btp_packet_from_json(obj: Json) -> btp.BtpPacket:
    request_id = obj["requestId"]
    data = obj["data"]
    protocol_data = _protocol_data(data["protocolData"])
    match obj["type"]:
        case btp.BtpPacketType.MESSAGE:
            return btp.Message(request_id, protocol_data)
        case btp.BtpPacketType.RESPONSE:
            return btp.Response(request_id, protocol_data)
        case btp.BtpPacketType.ERROR:
            return btp.Error(
                request_id, data["code"], data["name"], iso(data["triggeredAt"]), data["data"], protocol_data
            )
        case btp.BtpPacketType.TRANSFER:
            return btp.Transfer(request_id, int(data["amount"]), protocol_data)
    raise AssertionError(f"unexpected BTP type in vector: {obj['type']}")
