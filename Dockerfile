FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY etl ./etl
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --create-home numbers-etl
USER numbers-etl
ENV NUMBERS_ETL_LOG_FORMAT=json
ENTRYPOINT ["numbers-etl"]
CMD ["daemon"]
