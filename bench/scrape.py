"""Scraping throughput on a local site: what the safety and de-duplication work costs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/imagineer_bench .venv/bin/python bench/scrape.py

Uses its own throwaway database (test_<name>, kept between runs) and media folder. The site
runs on 127.0.0.1 in this process: ``--pages`` pages (the first links to the others),
``--images`` distinct PNGs on each. The per-host delay is 0 here to measure the work itself (the default, 1 s, bounds any
real crawl at about one request per second per site).

Baseline: the naive script (requests.get every page and <img src>, write the bytes) with no
address checks, robots.txt, decoding, hashing or database. Ours: a ScrapeJob run in-process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
MEDIA = Path(tempfile.mkdtemp(prefix="imagineer-bench-scrape-"))
os.environ["MEDIA_ROOT"] = str(MEDIA)
os.environ["IMAGINEER_SCRAPE_ALLOW_LOOPBACK"] = "true"
os.environ["IMAGINEER_SCRAPE_HOST_DELAY_MS"] = "0"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402


def naive_crawl(start: str, pages: int, out: Path) -> tuple[int, int]:
    import requests
    from bs4 import BeautifulSoup

    queue, seen, fetched, saved = [start], {start}, 0, 0
    with requests.Session() as session:
        while queue and fetched < pages:
            url = queue.pop(0)
            soup = BeautifulSoup(session.get(url, timeout=10).content, "html.parser")
            fetched += 1
            for img in soup.find_all("img"):
                (out / f"{saved}.png").write_bytes(session.get(urljoin(url, str(img["src"])), timeout=10).content)
                saved += 1
            for link in soup.find_all("a", href=True):
                target = urljoin(url, str(link["href"]))
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
    return fetched, saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--images", type=int, default=10, help="images per page")
    parser.add_argument("--size", type=int, default=256, help="image width (height is 3/4 of it)")
    args = parser.parse_args()

    connection.creation.create_test_db(verbosity=0, keepdb=True)

    from albums.services.scraping import scrape_job_create, scrape_job_run
    from albums.tests.scrape_site import picture, site_running

    size = (args.size, args.size * 3 // 4)
    rows: list[tuple[str, int, int, float]] = []
    with site_running() as site:
        site.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        total_bytes = 0
        for page in range(args.pages):
            for number in range(args.images):
                data = picture(page * 1000 + number, size)
                total_bytes += len(data)
                site.add_image(f"/img/{page}-{number}.png", data)
            tags = "".join(
                f'<img src="/img/{page}-{number}.png" alt="p{page} n{number}">' for number in range(args.images)
            )
            # The first page links to all the others: one level deep.
            links = "".join(f'<a href="/p/{other}">{other}</a>' for other in range(1, args.pages)) if page == 0 else ""
            site.add(f"/p/{page}", tags + links)
        start = site.url("/p/0")

        out = MEDIA / "naive"
        out.mkdir()
        began = time.perf_counter()
        pages, images = naive_crawl(start, args.pages, out)
        rows.append(("baseline: naive requests loop", pages, images, time.perf_counter() - began))

        job = scrape_job_create(
            user=None,
            start_urls=[start],
            album_name=f"bench {time.time():.0f}",
            max_images=args.pages * args.images,
            max_pages=args.pages,
            max_depth=1,
            min_width=16,
            min_height=16,
            enqueue=False,
        )
        began = time.perf_counter()
        job = scrape_job_run(job_id=job.pk)
        elapsed = time.perf_counter() - began
        assert job.status == "succeeded", (job.error, job.errors)
        rows.append(
            ("ours: ScrapeJob (checked, decoded, hashed, stored)", job.pages_fetched, job.images_downloaded, elapsed)
        )

    print(
        f"\n{args.pages} pages x {args.images} images of {size[0]}x{size[1]} PNG ({total_bytes / 1e6:.1f} MB), 127.0.0.1, host delay 0"
    )
    print(f"{'variant':<52} {'pages':>6} {'images':>7} {'seconds':>8} {'pages/s':>8} {'images/s':>9} {'ms/image':>9}")
    for name, pages, images, seconds in rows:
        print(
            f"{name:<52} {pages:>6} {images:>7} {seconds:>8.2f} {pages / seconds:>8.1f} {images / seconds:>9.1f}"
            f" {1000 * seconds / max(images, 1):>9.1f}"
        )


if __name__ == "__main__":
    main()
