"""Web app measurements on the embedded stack (the real gateway of `tonestream up`, this process).

- the whole app: `/` and every asset it can load — the stylesheet and the ES-module graph, found
  by following the page's links and each module's imports, static and dynamic — fetched over
  HTTP level by level (the modules of one import level in parallel, as a browser does), cold: a
  new connection per load. Bytes are as sent (the gateway does not compress).
- first load in Chromium, when it is installed: a fresh profile each time, and Navigation Timing
  gives the load event (the page loads only the sign-in form's modules; the signed-in app follows
  in the background) and the time until the sign-in form is on screen, beside the CPU time this
  process (the gateway, and the small Playwright client) spent on it: the part that load on a
  shared machine cannot inflate much. Then a signed-in person's visit with a cold cache: the
  time until the library's first page is on screen (session restored, app loaded, page read).
- library at size: `size` tracks in the catalog (documents as an upload and the indexing stage
  write them), then the library's requests over HTTP: the first page (50 tracks) in each sort,
  and the following pages by cursor — what the web app asks for, never the whole list.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import psutil
from playwright.async_api import Browser, Page, async_playwright

from bench.gateway import PASSWORD, Client, gateway_stack
from bench.report import markdown_table, verdict
from gateway.controllers.web import STATIC_IMPORT
from stores.catalog import Catalog, upload_document
from stores.catalog_order import COLUMNS
from tests.browser.conftest import ARGS, chromium_path

PAGE = 50
BATCH = 500
FIRST_LOAD_BYTES = 200_000
FIRST_LOAD_MS = 300.0
_LINKS = re.compile(r'(?:src|href)="(/web/[^"]+)"')
_DYNAMIC_IMPORT = re.compile(r"""\bimport\(\s*['"](\.{1,2}/[^'"]+)['"]\s*\)""")
KEYS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def _load_once(base: str) -> tuple[int, int, float]:
    """(bytes, files, seconds) of one cold load of the page and everything it pulls in."""
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        page = await http.get("/")
        page.raise_for_status()
        total, files = len(page.content), 1
        seen: set[str] = set()
        level = list(dict.fromkeys(_LINKS.findall(page.text)))
        while level:
            seen.update(level)
            answers = await asyncio.gather(*(http.get(path) for path in level))
            following: list[str] = []
            for path, answer in zip(level, answers, strict=True):
                answer.raise_for_status()
                total, files = total + len(answer.content), files + 1
                if path.endswith(".js"):
                    text = answer.text
                    imported = STATIC_IMPORT.findall(text) + _DYNAMIC_IMPORT.findall(text)
                    following += [urljoin(path, found) for found in imported]
            level = [path for path in dict.fromkeys(following) if path not in seen]
    return total, files, time.perf_counter() - started


_TIMING = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const rest = performance.getEntriesByType('resource');
  return { load: nav.loadEventEnd,
           bytes: nav.encodedBodySize
                  + rest.reduce((sum, entry) => sum + entry.encodedBodySize, 0) };
}"""
# when (ms from navigation start) the sign-in form and the library's first page reach the page,
# noted by the page itself: a Python round trip to ask would add its own delay
_WATCH = """
window.tonestreamShown = {};
new MutationObserver(() => {
  for (const [name, selector] of [['form', 'input[name=username]'],
                                  ['library', "table.tracks[data-requests='1']"]]) {
    if (!(name in window.tonestreamShown) && document.querySelector(selector))
      window.tonestreamShown[name] = performance.now();
  }
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


async def _shown(page: Page, name: str) -> float:
    """When the page noted `name` on screen (see _WATCH), waiting for it."""
    found = await page.wait_for_function("(name) => window.tonestreamShown?.[name]", arg=name)
    return float(await found.json_value())


async def _chromium_loads(base: str, runs: int) -> dict[str, Any] | None:
    """Chromium's own figures (ms from navigation start), or None without Chromium."""
    path = chromium_path()
    if path is None:
        return None
    loads, forms, transferred, cpu, library = [], [], [], [], []
    me = psutil.Process()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=ARGS)
        try:
            for _ in range(runs):
                context = await browser.new_context()  # a cold cache every time
                page = await context.new_page()
                await page.add_init_script(_WATCH)
                before = me.cpu_times()
                await page.goto(base, wait_until="load")
                form_ms = await _shown(page, "form")
                after = me.cpu_times()
                cpu.append(after.user + after.system - before.user - before.system)
                timing = await page.evaluate(_TIMING)
                loads.append(float(timing["load"]))
                forms.append(form_ms)
                transferred.append(int(timing["bytes"]))
                await context.close()
            library = await _returning_loads(browser, base, runs)
        finally:
            await browser.close()
    return {
        "load_event_ms_p50": round(statistics.median(loads), 1),
        "load_event_ms_p95": round(_p95(loads), 1),
        "sign_in_form_ms_p50": round(statistics.median(forms), 1),
        "sign_in_form_ms_p95": round(_p95(forms), 1),
        "library_shown_ms_p50": round(statistics.median(library), 1),
        "library_shown_ms_p95": round(_p95(library), 1),
        "gateway_cpu_ms_p50": _ms(statistics.median(cpu)),
        "bytes": max(transferred),
    }


async def _returning_loads(browser: Browser, base: str, runs: int) -> list[float]:
    """ms from navigation start until a signed-in person's library is on screen, cold cache.

    The browser keeps only the session cookie between visits; each visit's refresh rotates it,
    so the next visit starts from the cookie the last one left.
    """
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(base)
    await page.fill("input[name=username]", "bench")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("table.tracks[data-requests='1']")
    state = await context.storage_state()
    await context.close()
    shown = []
    for _ in range(runs):
        context = await browser.new_context(storage_state=state)
        page = await context.new_page()
        await page.add_init_script(_WATCH)
        await page.goto(base)
        shown.append(await _shown(page, "library"))
        state = await context.storage_state()
        await context.close()
    return shown


async def _fill_library(client: Client, size: int, seed: int) -> str:
    """`size` analysed tracks of the bench user, written in batches; returns the tenant."""
    me = await client.http.get("/v1/auth/me", headers={"Authorization": f"Bearer {client.token}"})
    me.raise_for_status()
    tenant: str = me.json()["user_id"]
    catalog = client.worker.catalog
    assert catalog is not None
    rng = random.Random(seed)
    batch: list[dict[str, Any]] = []
    for number in range(size):
        fields: dict[str, Any] = {
            "filename": f"track {rng.randrange(10**6):06d}.flac",
            "sha256": f"{number:064x}",
            "size_bytes": rng.randrange(10**6, 10**8),
            "content_type": "audio/flac",
            "status": "indexed",
            "created_at": 1.7e9 + number,
            "features": {
                "tempo_bpm": round(rng.uniform(70, 180), 1),
                "duration_s": round(rng.uniform(30, 600), 1),
                "key": rng.choice(KEYS),
                "mode": rng.choice(("major", "minor")),
            },
            "tags": {"mood": [rng.choice(("dark", "happy", "calm"))], "genre": ["house"]},
        }
        if rng.random() < 0.7:
            fields["audio"] = {
                "metadata": {"title": f"Title {number}", "artist": f"A{number % 97}"}
            }
        batch.append(upload_document(tenant, uuid.UUID(int=rng.getrandbits(128)).hex, fields))
        if len(batch) >= BATCH:
            await _insert(catalog, tenant, batch)
            batch = []
    await _insert(catalog, tenant, batch)
    return tenant


async def _insert(catalog: Catalog, tenant: str, documents: list[dict[str, Any]]) -> None:
    """The documents in one insert, as Catalog.create_track writes each (bounds too)."""
    if documents:
        await catalog.tracks.insert_many(documents)
        await catalog.note_written(tenant, documents, added=len(documents))


async def _library_pages(client: Client, pages: int) -> dict[str, Any]:
    """Latency of the first page in every sort, and of `pages` pages followed by cursor."""
    headers = {"Authorization": f"Bearer {client.token}"}

    async def timed(params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        response = await client.http.get("/v1/tracks", params=params, headers=headers)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed, response.json()

    first: dict[str, float] = {}
    again: dict[str, float] = {}  # the same first page once more: its slices are known then
    for name in COLUMNS:
        for sort in (name, f"-{name}"):
            elapsed, page = await timed({"sort": sort, "limit": PAGE})
            assert len(page["items"]) == PAGE
            first[sort] = elapsed
            again[sort], _ = await timed({"sort": sort, "limit": PAGE})
    following: list[float] = []
    cursor = None
    for _ in range(pages):
        params: dict[str, Any] = {"limit": PAGE, "sort": "bpm"}
        elapsed, page = await timed(params | ({"cursor": cursor} if cursor else {}))
        following.append(elapsed)
        cursor = page["next_cursor"]
    values = list(first.values())
    return {
        "first_page_ms_p50": _ms(statistics.median(values)),
        "first_page_ms_max": _ms(max(values)),
        "slowest_sort": max(first, key=first.__getitem__),
        "first_page_ms": {sort: _ms(value) for sort, value in first.items()},
        "first_page_again_ms_p50": _ms(statistics.median(again.values())),
        "first_page_again_ms_max": _ms(max(again.values())),
        "next_page_ms_p50": _ms(statistics.median(following)),
        "next_page_ms_p95": _ms(_p95(following)),
    }


async def measure_web(work: Path, runs: int, library_size: int, seed: int = 0) -> dict[str, Any]:
    async with gateway_stack(work / "web-var") as client:
        base = str(client.http.base_url)
        await _load_once(base)  # warm the gateway's routes once, as a running server would be
        loads = [await _load_once(base) for _ in range(runs)]
        seconds = [elapsed for _, _, elapsed in loads]
        first_load = {
            "bytes": loads[0][0],
            "files": loads[0][1],
            "http_ms_p50": _ms(statistics.median(seconds)),
            "http_ms_p95": _ms(_p95(seconds)),
            "chromium": await _chromium_loads(base, runs),
        }
        started = time.perf_counter()
        await _fill_library(client, library_size, seed)
        fill_s = time.perf_counter() - started
        library = await _library_pages(client, pages=min(20, library_size // PAGE - 1))
    return {
        "first_load": first_load,
        "library": {"size": library_size, "fill_s": round(fill_s, 1), **library},
    }


def web_table(web: dict[str, Any]) -> str:
    first, library = web["first_load"], web["library"]
    chromium = first["chromium"]
    rows = [
        [
            f"the whole app, HTML + JS + CSS ({first['files']} files)",
            f"{first['bytes'] / 1000:.1f} KB",
            f"≤ {FIRST_LOAD_BYTES // 1000} KB",
            verdict(first["bytes"] <= FIRST_LOAD_BYTES),
        ],
        [
            "the whole app over HTTP (cold connection), p50 / p95",
            f"{first['http_ms_p50']} / {first['http_ms_p95']} ms",
            f"≤ {FIRST_LOAD_MS:g} ms",
            verdict(first["http_ms_p95"] <= FIRST_LOAD_MS),
        ],
    ]
    if chromium is not None:
        rows.append(
            [
                "first load in Chromium: sign-in form on screen p50 / p95 (load event; CPU)",
                f"{chromium['sign_in_form_ms_p50']} / {chromium['sign_in_form_ms_p95']} ms "
                f"({chromium['load_event_ms_p50']} / {chromium['load_event_ms_p95']} ms; "
                f"gateway CPU {chromium['gateway_cpu_ms_p50']} ms)",
                f"≤ {FIRST_LOAD_MS:g} ms",
                verdict(
                    max(chromium["sign_in_form_ms_p95"], chromium["load_event_ms_p95"])
                    <= FIRST_LOAD_MS
                ),
            ]
        )
        rows.append(
            [
                "signed in, cold cache: library's first page on screen, p50 / p95",
                f"{chromium['library_shown_ms_p50']} / {chromium['library_shown_ms_p95']} ms",
                "",
                "",
            ]
        )
    rows += [
        [
            f"library of {library['size']:,} tracks: first page ({PAGE}) per sort, p50 / max",
            f"{library['first_page_ms_p50']} / {library['first_page_ms_max']} ms "
            f"(slowest: {library['slowest_sort']})",
            "paged, never a full load",
            "",
        ],
        [
            f"library of {library['size']:,} tracks: the same first page again, p50 / max",
            f"{library['first_page_again_ms_p50']} / {library['first_page_again_ms_max']} ms",
            "",
            "",
        ],
        [
            f"library of {library['size']:,} tracks: next page by cursor, p50 / p95",
            f"{library['next_page_ms_p50']} / {library['next_page_ms_p95']} ms",
            "",
            "",
        ],
    ]
    return markdown_table(["web app", "measured", "target", ""], rows)
