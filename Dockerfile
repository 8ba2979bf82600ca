# alu-ledger from its wheel: the build stage makes the wheel (schemas, factor tables, rule
# sets and demo data inside it), the runtime stage installs the pinned dependencies of
# requirements.lock and then the wheel itself, not editable, and runs as a plain user.
# Refresh the lock with: python3 scripts/wheel_check.py --write-lock
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY api ./api
COPY schemas ./schemas
COPY scripts/demo ./scripts/demo
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir -r /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-deps /wheels/*.whl \
 && useradd --create-home --uid 10001 ledger && mkdir -p /data && chown ledger /data
USER ledger
WORKDIR /data
ENV LEDGER_DATA_DIR=/data
EXPOSE 8000
# init is idempotent: the first start creates the log key, schema and genesis record.
CMD ["sh", "-c", "alu-ledger init && alu-ledger serve --host 0.0.0.0 --port 8000"]
