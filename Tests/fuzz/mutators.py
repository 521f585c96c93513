"""Small mutators for the fuzzer: each takes (data: bytes, rng: random.Random) and returns bytes.

Byte and line mutators work on any file; JSON mutators on a JSON document (or one JSON line);
the safetensors mutators know the file's layout (u64 header length, JSON header, data).
"""
import json
import struct

# Numbers and values that sit on the edges of what a reader must handle.
INTERESTING_NUMBERS = ["0", "-1", "1", "2", "7", "255", "256", "65535", "2147483647", "2147483648", "4294967296",
                       "9223372036854775807", "9223372036854775808", "99999999999999999999", "-9223372036854775808",
                       "1e3", "1e12", "1e400", "-1e400", "512.0", "0.5", "-0.0", "1E-400", "NaN", "Infinity", "-Infinity"]
INTERESTING_VALUES = ["null", "true", "false", '""', '"512"', "[]", "{}", "[1, 2]", '"\\ud800"', '"\\u0000"',
                      '"' + "x" * 5000 + '"'] + INTERESTING_NUMBERS
INTERESTING_TEXT = ["\x00", "\r", "\r\n", "\t", "\u2028", "\ufeff", "\ufffd", "[SEP]", "<mask>", "<s>", "\u0301" * 50,
                    "e\u0301\u0323", "\u0f73" * 30, "中文", "İ", '"', ",", "'", "\\", "#", "é" * 200, " " * 300]


# ---------------------------------------------------------------- bytes

def flip_bit(data, rng):
    if not data:
        return b"\x00"
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


def set_byte(data, rng):
    if not data:
        return bytes([rng.randrange(256)])
    i = rng.randrange(len(data))
    return data[:i] + bytes([rng.choice([0, 0x7F, 0x80, 0xC0, 0xFF, rng.randrange(256)])]) + data[i + 1:]


def delete_range(data, rng):
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 64):]


def duplicate_range(data, rng):
    if not data:
        return data
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randint(1, 256))
    return data[:j] + data[i:j] * rng.randint(1, 8) + data[j:]


def truncate(data, rng):
    return data[:rng.randrange(len(data) + 1)]


def insert_text(data, rng):
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.choice(INTERESTING_TEXT).encode() + data[i:]


def insert_invalid_utf8(data, rng):
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]) + data[i:]


def long_run(data, rng):
    """A run of 0.1-2 MB of one character: linear-time readers shrug, quadratic ones hang."""
    i = rng.randrange(len(data) + 1)
    char = rng.choice([b" ", b"a", b"\t", b",", "é".encode(), "中".encode(), b"\n", b"[", "\u0301".encode()])
    return data[:i] + char * (rng.randint(100_000, 2_000_000) // len(char)) + data[i:]


BYTE_MUTATORS = [flip_bit, set_byte, delete_range, duplicate_range, truncate, insert_text, insert_invalid_utf8, long_run]


# ---------------------------------------------------------------- lines

def _lines(data):
    return data.split(b"\n")


def duplicate_line(data, rng):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return b"\n".join(lines)


def delete_line(data, rng):
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def swap_lines(data, rng):
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def split_line(data, rng):
    """A field separator or line break in the middle of a line."""
    lines = _lines(data)
    i = rng.randrange(len(lines))
    k = rng.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:k] + rng.choice([b"\t", b",", b"\n", b"\r", b'"', b"\t\t"]) + lines[i][k:]
    return b"\n".join(lines)


def crlf(data, rng):
    return data.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\n"]))


LINE_MUTATORS = [duplicate_line, delete_line, swap_lines, split_line, crlf]


# ---------------------------------------------------------------- JSON

def _paths(value, prefix=()):
    """Every (path, value) in a JSON value, for picking a place to mutate."""
    yield prefix, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for k, v in enumerate(value):
            yield from _paths(v, prefix + (k,))


def _set(root, path, literal):
    """The document with the value at `path` replaced by a raw JSON literal (which may be NaN,
    a huge integer or an escape json.dumps would not write): done by a placeholder."""
    marker = "\u0000MUTATION\u0000"
    if not path:
        return literal
    node = root
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = marker
    return json.dumps(root).replace(json.dumps(marker), literal)


def json_value(data, rng):
    """One value (any depth) replaced by an interesting literal."""
    root = json.loads(data)
    path, _ = rng.choice(list(_paths(root)))
    return _set(root, path, rng.choice(INTERESTING_VALUES)).encode()


def json_number(data, rng):
    """One number replaced by an interesting number."""
    root = json.loads(data)
    numbers = [p for p, v in _paths(root) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return json_value(data, rng)
    return _set(root, rng.choice(numbers), rng.choice(INTERESTING_NUMBERS)).encode()


def json_duplicate_key(data, rng):
    """A member of the top-level object given again with another value (Python keeps the last)."""
    root = json.loads(data)
    if not isinstance(root, dict) or not root:
        return json_value(data, rng)
    key = rng.choice(list(root))
    text = json.dumps(root)
    return (text[:-1] + ", %s: %s}" % (json.dumps(key), rng.choice(INTERESTING_VALUES))).encode()


def json_delete_key(data, rng):
    root = json.loads(data)
    objects = [v for _, v in _paths(root) if isinstance(v, dict) and v]
    if not objects:
        return json_value(data, rng)
    obj = rng.choice(objects)
    del obj[rng.choice(list(obj))]
    return json.dumps(root).encode()


def json_deep(data, rng):
    """The document nested inside many arrays."""
    n = rng.choice([100, 300, 5000, 100_000])
    return b"[" * n + data + b"]" * n


JSON_MUTATORS = [json_value, json_number, json_duplicate_key, json_delete_key, json_deep]


# ---------------------------------------------------------------- safetensors

def _split_safetensors(data):
    n = struct.unpack("<Q", data[:8])[0]
    return data[8:8 + n], data[8 + n:]


def safetensors_header(data, rng):
    """A JSON mutation of the header, the length prefix kept true."""
    header, body = _split_safetensors(data)
    header = rng.choice(JSON_MUTATORS[:4])(header, rng)
    return struct.pack("<Q", len(header)) + header + body


def safetensors_length(data, rng):
    """A wrong header length."""
    n = struct.unpack("<Q", data[:8])[0]
    bad = rng.choice([0, 1, n - 1, n + 1, n + 8, len(data), 2 ** 31, 2 ** 63, 2 ** 64 - 1])
    return struct.pack("<Q", bad % 2 ** 64) + data[8:]


def safetensors_offsets(data, rng):
    """A tensor's shape or offsets replaced by another plausible list."""
    header, body = _split_safetensors(data)
    meta = json.loads(header)
    name = rng.choice([k for k in meta if k != "__metadata__"])
    field = rng.choice(["shape", "data_offsets"])
    meta[name][field] = rng.choice([[], [0], [0, 0], [2 ** 40, 2 ** 40 + 4], [1, 2, 3], [2 ** 31, 2 ** 31],
                                    [x * rng.choice([2, 3, 1000]) for x in meta[name][field]]])
    header = json.dumps(meta).encode()
    return struct.pack("<Q", len(header)) + header + body


def safetensors_values(data, rng):
    """Tensor values set to NaN, infinity or huge floats."""
    header, body = _split_safetensors(data)
    body = bytearray(body)
    for _ in range(rng.randint(1, 64)):
        if len(body) < 4:
            break
        i = rng.randrange(len(body) // 4) * 4
        body[i:i + 4] = struct.pack("<f", rng.choice([float("nan"), float("inf"), -float("inf"), 3e38, -0.0]))
    return data[:8] + header + bytes(body)


SAFETENSORS_MUTATORS = [safetensors_header, safetensors_length, safetensors_offsets, safetensors_values,
                        truncate, flip_bit]
