"""What a reader of the docs sees, checked in a real headless browser with the network off.

The site is built (notebook execution off, as in test_docs) into a temporary directory and its
pages are opened from ``file://`` in Debian's Chromium, driven by Playwright with the browser
context offline and every non-``file:`` request aborted and recorded. A page passes when its
math was typeset by the bundled MathJax (every math element holds a rendered ``mjx-container``,
no TeX error, no raw ``\\(`` left in the visible text) and it asked the network for nothing.

The browser comes from ``make browser`` (``apt-get install chromium`` when run as root; ``make
test`` runs it first). Without a Chromium these tests are skipped, saying how to install one.
Set ``VI_LAB_SCREENSHOTS=DIR`` to keep a PNG of every page checked.
"""
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from test_docs import _copy_sources, _sphinx

#: Flags for a quiet, reproducible headless Chromium: no first-run UI, no background traffic.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
INSTALL_HINT = ("install Debian's Chromium with `sudo apt-get install chromium` (`make browser` does it "
                "when run as root; `make test` runs `make browser` first)")


def chromium_path():
    """Path of the Chromium executable, or None (VI_LAB_CHROMIUM overrides the search)."""
    explicit = os.environ.get("VI_LAB_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def offline_browser(viewport=(1280, 900)):
    """A Playwright browser context with the network off; yields (context, blocked_urls)."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright (which drives Chromium) is not installed: `make browser` "
                                          "installs it (`pip install playwright`)")
    executable = chromium_path()
    if executable is None:
        pytest.skip(f"no Chromium found for the browser tests: {INSTALL_HINT}")
    blocked = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("file:", "data:", "about:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    with sync_api.sync_playwright() as pw:
        # Playwright starts every launch with a fresh, temporary user-data-dir of its own.
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": viewport[0], "height": viewport[1]})
            context.route("**/*", route)
            yield context, blocked
        finally:
            browser.close()


def screenshot(page, name, tmp_path):
    """Full-page PNG of ``page``, in VI_LAB_SCREENSHOTS if set, else in tmp_path; returns the path."""
    folder = Path(os.environ.get("VI_LAB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('/', '_')}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"screenshot of {name} is (nearly) empty"
    return path


def wait_for_mathjax(page, timeout=30_000):
    """Wait until MathJax 3 has loaded and finished its first typesetting pass."""
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=timeout)
    page.evaluate("() => MathJax.startup.promise")


MATH_STATS = """() => {
    const math = Array.from(document.querySelectorAll('.math'));
    return {
        math: math.length,
        rendered: math.filter(e => e.querySelector('mjx-container')).length,
        containers: document.querySelectorAll('mjx-container').length,
        errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent).slice(0, 5),
        missing: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)).slice(0, 5),
    };
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    # Warnings are test_docs' business (it builds with -W); here a page only has to be written.
    tmp = tmp_path_factory.mktemp("browser-docs")
    result = _sphinx(_copy_sources(tmp / "src"), tmp, strict=False)
    html = tmp / "html"
    assert result.returncode == 0 and (html / "math_guide.html").is_file(), \
        "the docs did not build:\n" + result.stderr[-4000:]
    return html


@pytest.fixture(scope="module")
def browser():
    with offline_browser() as handle:
        yield handle


@pytest.mark.parametrize("page_name", ["math_guide", "notebooks/02_elbo_and_per_datapoint_vi"])
def test_math_renders_from_disk_with_the_network_off(site, browser, page_name, tmp_path):
    context, blocked = browser
    blocked.clear()
    page = context.new_page()
    page.goto((site / f"{page_name}.html").as_uri())
    wait_for_mathjax(page)
    stats = page.evaluate(MATH_STATS)
    text = page.inner_text("body")
    screenshot(page, page_name, tmp_path)
    page.close()
    assert stats["math"] >= 10, f"{page_name}: expected a page with math, found {stats['math']} math elements"
    assert stats["rendered"] == stats["math"], f"{page_name}: math left untypeset: {stats['missing']}"
    assert not stats["errors"], f"{page_name}: MathJax could not typeset: {stats['errors']}"
    for raw in ("\\(", "\\)", "\\[", "\\begin{"):
        assert raw not in text, f"{page_name}: raw TeX {raw!r} is visible: MathJax did not run"
    assert not blocked, f"{page_name} asked the network for {blocked}"


def test_the_network_really_is_off(browser, tmp_path):
    """The check above can fail: the same page with MathJax from a CDN renders no math here."""
    context, blocked = browser
    blocked.clear()
    html = tmp_path / "cdn.html"
    html.write_text('<html><head><script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js">'
                    '</script></head><body><p class="math">\\(x^2\\)</p></body></html>', encoding="utf-8")
    page = context.new_page()
    page.goto(html.as_uri())
    page.wait_for_timeout(1500)
    stats = page.evaluate(MATH_STATS)
    text = page.inner_text("body")
    page.close()
    assert stats["rendered"] == 0 and "\\(x^2\\)" in text
    assert any("cdn.jsdelivr.net" in url for url in blocked)


PRE_STATS = """() => {
    const body = document.querySelector('div.body').getBoundingClientRect();
    return Array.from(document.querySelectorAll('div.body pre')).map(e => {
        const box = e.getBoundingClientRect();
        const wide = e.scrollWidth > e.clientWidth + 1;
        const before = e.scrollLeft;
        e.scrollLeft = 50;
        const scrolled = e.scrollLeft > before;
        e.scrollLeft = before;
        return {wide, scrolled, overflow: getComputedStyle(e).overflowX, right: box.right, bodyRight: body.right,
                text: e.textContent.slice(0, 50)};
    });
}"""


@pytest.mark.parametrize("page_name", ["getting_started", "notebooks/06_variance_reduction"])
def test_wide_code_blocks_scroll_instead_of_being_cut(site, browser, page_name, tmp_path):
    context, _ = browser
    page = context.new_page()
    page.goto((site / f"{page_name}.html").as_uri())
    blocks = page.evaluate(PRE_STATS)
    screenshot(page, f"{page_name}-code", tmp_path)
    page.close()
    wide = [b for b in blocks if b["wide"]]
    assert wide, f"{page_name}: no code block is wider than the text column at 1280 px, so nothing was checked"
    for block in wide:
        assert block["overflow"] in ("auto", "scroll") and block["scrolled"], \
            f"{page_name}: a wide code block cannot be scrolled: {block['text']!r}"
        assert block["right"] <= block["bodyRight"] + 1, \
            f"{page_name}: a code block runs past the text column: {block['text']!r}"


def test_tables_have_borders(site, browser):
    context, _ = browser
    page = context.new_page()
    page.goto((site / "math_guide.html").as_uri())
    cells = page.evaluate("""() => Array.from(document.querySelectorAll('div.body table td')).slice(0, 20).map(td => {
        const s = getComputedStyle(td);
        return [s.borderTopStyle, parseFloat(s.borderTopWidth), s.borderLeftStyle, parseFloat(s.borderLeftWidth)];
    })""")
    page.close()
    assert cells, "the math guide has no table"
    assert all(top != "none" and tw >= 1 and left != "none" and lw >= 1 for top, tw, left, lw in cells), cells
