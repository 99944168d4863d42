"""Reads memoized for one read-only request: made once within it, every time in a request that writes and outside
requests, so a write is never followed by a stale read."""

from django.http import HttpResponse
from django.test import RequestFactory

from cim.core.context import memoized
from cim.core.middleware import RequestIdMiddleware


def _reads_during(method: str) -> int:
    reads = []

    def view(request):
        for _ in range(3):
            memoized(("scope", 1), lambda: reads.append(1))
        return HttpResponse()

    RequestIdMiddleware(view)(RequestFactory().generic(method, "/"))
    return len(reads)


def test_a_get_request_reads_once_a_post_every_time():
    assert _reads_during("GET") == 1
    assert _reads_during("HEAD") == 1
    assert _reads_during("POST") == 3


def test_outside_a_request_it_reads_every_time_and_requests_do_not_share_the_memo():
    reads = []
    for _ in range(2):
        memoized(("scope", 1), lambda: reads.append(1))
    assert len(reads) == 2
    assert _reads_during("GET") == 1 and _reads_during("GET") == 1
