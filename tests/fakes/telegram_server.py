"""A fake Telegram Bot API on 127.0.0.1, following the documented contract.

It serves ``/bot<token>/getMe``, ``sendMessage`` and ``sendPhoto``; parses the
HTML parse mode the way Telegram does (only the tags it accepts, balanced, the
length counted after entity parsing) and answers with Bot API error bodies
``{"ok": false, "error_code", "description", "parameters"?}``. Faults are
scripted per send call or per chat; every accepted message is recorded per chat.
``fake.fault_mix = FaultMix(...)`` draws a random fault or ghost for every
send call (tests/fakes/fault_mix.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from .fault_mix import FaultMix, answered, unanswered

MAX_TEXT = 4096
MAX_CAPTION = 1024
SEND_METHODS = {"sendMessage", "sendPhoto"}

# Tag -> attributes Telegram accepts on it (core.telegram.org/bots/api#html-style).
ALLOWED_TAGS: dict[str, set[str]] = {
    "b": set(),
    "strong": set(),
    "i": set(),
    "em": set(),
    "u": set(),
    "ins": set(),
    "s": set(),
    "strike": set(),
    "del": set(),
    "span": {"class"},
    "tg-spoiler": set(),
    "a": {"href"},
    "tg-emoji": {"emoji-id"},
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityError(ValueError):
    """The text is not valid Telegram HTML."""


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_entity(text: str, start: int) -> tuple[str, int] | None:
    """The character an entity at ``text[start] == '&'`` stands for, and where it ends."""
    match = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);").match(text, start)
    if not match:
        return None
    name = match.group(1)
    if name.startswith("#x"):
        code = int(name[2:], 16)
    elif name.startswith("#"):
        code = int(name[1:])
    elif name in NAMED_ENTITIES:
        return NAMED_ENTITIES[name], match.end()
    else:
        return None  # Telegram keeps an unknown entity as literal text
    if code > 0x10FFFF:
        return None
    return chr(code), match.end()


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def parse_html(text: str) -> str:
    """The plain text Telegram would show for ``text``; raise EntityError like Telegram."""
    plain: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            decoded = _decode_entity(text, i)
            if decoded:
                plain.append(decoded[0])
                i = decoded[1]
                continue
            plain.append(char)
            i += 1
        elif char == "<":
            end = text.find(">", i)
            if end < 0:
                raise EntityError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
            body = text[i + 1 : end]
            if body.startswith("/"):
                name = body[1:].strip().lower()
                if not stack:
                    raise EntityError(f"Unexpected end tag at byte offset {_byte_offset(text, i)}")
                if name and name != stack[-1]:
                    raise EntityError(
                        f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                        f'expected "</{stack[-1]}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                _check_start_tag(body, _byte_offset(text, i))
                stack.append(re.split(r"\s", body, maxsplit=1)[0].lower())
            i = end + 1
        else:
            plain.append(char)
            i += 1
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(plain)


_ATTRIBUTE = re.compile(r"""\s*([a-zA-Z-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"']+))?""")


def _check_start_tag(body: str, offset: int) -> None:
    name, _, rest = body.partition(" ")
    name = name.strip().lower()
    if name not in ALLOWED_TAGS:
        raise EntityError(f'Unsupported start tag "{name}" at byte offset {offset}')
    attributes: dict[str, str] = {}
    rest = rest.strip()
    while rest:
        match = _ATTRIBUTE.match(rest)
        if not match or not match.group(0):
            raise EntityError(
                f'Expected equal sign in declaration of an attribute of the tag "{name}"'
            )
        value = (match.group(2) or "").strip("\"'")
        attributes[match.group(1).lower()] = value
        rest = rest[match.end() :].strip()
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise EntityError('Tag "span" must have class "tg-spoiler"')
    if name == "a" and not attributes.get("href"):
        raise EntityError('Tag "a" must have attribute "href"')


@dataclass
class Chat:
    id: int
    type: str  # "channel", "supergroup", "group" or "private"
    username: str = ""
    forbidden: bool = False
    migrate_to: int | None = None


@dataclass
class Call:
    method: str
    chat: str
    status: int
    at: float  # time.monotonic() when the request arrived


@dataclass
class _Script:
    """Faults keyed by the 1-based number of the send call they answer."""

    retry_after: dict[int, int] = field(default_factory=dict)
    server_error: dict[int, int] = field(default_factory=dict)
    delay: dict[int, float] = field(default_factory=dict)


class FakeTelegram:
    """Start with ``with FakeTelegram(token, chats={...}) as tg:``; aim ptb at ``tg.base_url``."""

    def __init__(self, token: str, chats: dict[str, str] | None = None) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._ids = itertools.count(-1001000000001, -1)
        self._message_ids = itertools.count(1)
        self._chats: dict[str, Chat] = {}
        self._send_calls = 0
        self._script = _Script()
        self.fault_mix: FaultMix | None = None
        self._stopping = threading.Event()
        self.flood_interval: float | None = None  # answer 429 when a chat gets messages faster
        self.photo_problems: dict[str, str] = {}  # photo URL -> Telegram's 400 description
        self.calls: list[Call] = []
        self.messages: dict[int, list[dict[str, Any]]] = {}
        for name, kind in (chats or {}).items():
            self.add_chat(name, kind)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- set-up and scripting ------------------------------------------------
    def add_chat(self, name: str, kind: str = "channel") -> Chat:
        """Register a chat by ``@username`` or numeric id string."""
        if name.startswith("@"):
            chat = Chat(id=next(self._ids), type=kind, username=name[1:])
        else:
            chat = Chat(id=int(name), type=kind)
        with self._lock:
            self._chats[name] = chat
            self._chats[str(chat.id)] = chat
        return chat

    def forbid(self, name: str) -> None:
        """The bot was kicked: every send to this chat answers 403."""
        self._chats[name].forbidden = True

    def migrate(self, name: str, new_id: int) -> None:
        """A group became a supergroup: sends to the old id answer migrate_to_chat_id."""
        self._chats[name].migrate_to = new_id
        self.add_chat(str(new_id), "supergroup")

    def refuse_photo(
        self, url: str, description: str = "Bad Request: failed to get HTTP URL content"
    ) -> None:
        """Telegram cannot fetch or use the image at ``url``: sendPhoto with it answers 400."""
        self.photo_problems[url] = description

    def retry_after(self, seconds: int, *, on_call: int) -> None:
        self._script.retry_after[on_call] = seconds

    def server_error(self, status: int = 500, *, on_call: int) -> None:
        self._script.server_error[on_call] = status

    def delay(self, seconds: float, *, on_call: int) -> None:
        """Answer this send call late (it is still delivered, as Telegram would)."""
        self._script.delay[on_call] = seconds

    # -- what arrived --------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/bot"

    def chat(self, name: str) -> Chat:
        return self._chats[name]

    def received(self, name: str) -> list[dict[str, Any]]:
        """Messages accepted for a chat, in arrival order."""
        return list(self.messages.get(self._chats[name].id, []))

    def sends(self) -> list[Call]:
        return [call for call in self.calls if call.method in SEND_METHODS]

    def wait_for_sends(self, count: int, timeout: float = 10) -> None:
        """Block until ``count`` send calls have been answered, late ones included."""
        with self._answered:
            if not self._answered.wait_for(lambda: len(self.sends()) >= count, timeout):
                raise AssertionError(f"only {len(self.sends())} of {count} sends answered")

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> FakeTelegram:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- the API -------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def finish(self) -> None:
                answered(self)
                super().finish()

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                params = _parse_body(self.headers.get("Content-Type", ""), body)
                mix = fake.fault_mix if self.path.rsplit("/", 1)[-1] in SEND_METHODS else None
                with mix.wire(self) if mix else contextlib.nullcontext() as wire:
                    if wire is not None:
                        wire.carry(1)
                    kind = mix.draw() if mix else None
                    if kind in ("ghost", "reset"):
                        if kind == "ghost":  # sent, then the line dies before the answer
                            fake._answer(self.path, params)
                        self.close_connection = True
                        with contextlib.suppress(OSError):
                            self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if kind == "stall":
                        fake._stopping.wait(mix.stall_seconds)
                    if kind in ("429", "500", "503", "stall"):
                        status = 503 if kind == "stall" else int(kind)
                        wait = max(1, round(mix.rate_limit_seconds))
                        answer = (
                            _error(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
                            if kind == "429"
                            else _error(status, "Internal Server Error")
                        )
                    else:
                        status, answer = fake._answer(self.path, params)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # a client that timed out has gone away
                    unanswered(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return None

        return Handler

    def _answer(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
        if not match:
            return 404, _error(404, "Not Found")
        token, method = match.groups()
        if token != self.token:
            return 401, _error(401, "Unauthorized")
        if method == "getMe":
            user = {"id": 1, "is_bot": True, "first_name": "Brief", "username": "brief_bot"}
            return 200, {"ok": True, "result": user}
        if method not in SEND_METHODS:
            return 404, _error(404, "Not Found: method not found")
        with self._lock:
            self._send_calls += 1
            number = self._send_calls
        delay = self._script.delay.get(number)
        if delay:
            self._stopping.wait(delay)
        status, answer = self._send(number, method, params)
        with self._lock:
            self.calls.append(
                Call(method, str(params.get("chat_id", "")), status, time.monotonic())
            )
            self._answered.notify_all()
        return status, answer

    def _send(self, number: int, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        if number in self._script.retry_after:
            wait = self._script.retry_after[number]
            return 429, _error(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        if number in self._script.server_error:
            code = self._script.server_error[number]
            return code, _error(code, "Internal Server Error")
        chat = self._chats.get(str(params.get("chat_id", "")))
        if chat is None:
            return 400, _error(400, "Bad Request: chat not found")
        if chat.forbidden:
            return 403, _error(403, "Forbidden: bot was kicked from the channel chat")
        if chat.migrate_to is not None:
            description = "Bad Request: group chat was upgraded to a supergroup chat"
            return 400, _error(400, description, migrate_to_chat_id=chat.migrate_to)
        if method == "sendPhoto" and params.get("photo") in self.photo_problems:
            return 400, _error(400, self.photo_problems[params["photo"]])
        problem = _content_problem(method, params)
        if problem:
            return 400, _error(400, f"Bad Request: {problem}")
        if self.flood_interval is not None:
            earlier = [c.at for c in self.calls if c.chat in _names(chat) and c.status == 200]
            if earlier and time.monotonic() - earlier[-1] < self.flood_interval:
                return 429, _error(429, "Too Many Requests: retry after 1", retry_after=1)
        return 200, {"ok": True, "result": self._record(chat, method, params)}

    def _record(self, chat: Chat, method: str, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat.id, "type": chat.type, "title": chat.username or str(chat.id)},
        }
        if method == "sendPhoto":
            message["photo"] = [
                {"file_id": "photo-1", "file_unique_id": "u1", "width": 1280, "height": 720}
            ]
            message["caption"] = parse_html(params.get("caption", ""))
            recorded = {
                "kind": "photo",
                "photo": params.get("photo"),
                "html": params.get("caption"),
            }
        else:
            message["text"] = parse_html(params["text"])
            recorded = {"kind": "text", "html": params["text"]}
        recorded.update(
            message_id=message["message_id"],
            text=message.get("text", message.get("caption", "")),
            silent=_flag(params.get("disable_notification")),
            link_preview_options=_json_value(params.get("link_preview_options")),
        )
        with self._lock:
            self.messages.setdefault(chat.id, []).append(recorded)
        return message


def _names(chat: Chat) -> set[str]:
    return {str(chat.id), f"@{chat.username}"} if chat.username else {str(chat.id)}


def _content_problem(method: str, params: dict[str, Any]) -> str:
    if params.get("parse_mode") not in (None, "HTML"):
        return "unsupported parse_mode in this fake"
    if method == "sendPhoto":
        if not params.get("photo"):
            return "there is no photo in the request"
        field_name, limit, too_long = "caption", MAX_CAPTION, "message caption is too long"
    else:
        field_name, limit, too_long = "text", MAX_TEXT, "message is too long"
    raw = params.get(field_name, "")
    try:
        plain = parse_html(raw) if params.get("parse_mode") == "HTML" else raw
    except EntityError as exc:
        return f"can't parse entities: {exc}"
    if method == "sendMessage" and not plain.strip():
        return "message text is empty"
    if utf16_length(plain) > limit:
        return too_long
    return ""


def _error(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        return json.loads(body or b"{}")
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        params: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            params[name] = payload if part.get_filename() else payload.decode()
        return params
    return {key: values[-1] for key, values in parse_qs(body.decode()).items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _flag(value: Any) -> bool:
    return _json_value(value) is True
