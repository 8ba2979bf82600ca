FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY api ./api
COPY schemas ./schemas
COPY scripts ./scripts
RUN pip install --no-cache-dir -e . \
 && useradd --create-home ledger && mkdir -p /data && chown ledger /data
USER ledger
ENV LEDGER_DATA_DIR=/data
EXPOSE 8000
# init is idempotent: the first start creates the log key, schema and genesis record.
CMD ["sh", "-c", "alu-ledger init && alu-ledger serve --host 0.0.0.0 --port 8000"]
