"""The HTTP floor: an ingest endpoint that reads the body and answers, doing nothing else.

``python bench/null_server.py PORT`` serves ``POST /api/v1/events`` with the server stack
sessionscope uses (uvicorn, FastAPI, the body read the same way, the work in a worker thread),
counting NDJSON lines as accepted. What the same clients reach against it bounds what any
ingest built on that stack can reach on the machine, before parsing, validation or storage.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

app = FastAPI()


def _count(body: bytes) -> int:
    return body.count(b"\n") + (0 if body.endswith(b"\n") else 1)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/events")
async def events(request: Request) -> JSONResponse:
    chunks = [chunk async for chunk in request.stream()]
    accepted = await run_in_threadpool(_count, b"".join(chunks))
    return JSONResponse({"accepted": accepted, "duplicates": 0})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
