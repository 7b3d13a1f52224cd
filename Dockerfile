# The bundled Echo service for Cloud Run: h2c on $PORT, reflection on.
#   gcloud run deploy echo --source . --use-http2 --no-allow-unauthenticated
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cloudrun_grpc_cli ./cloudrun_grpc_cli
RUN pip install --no-cache-dir .
ENV PORT=8080
EXPOSE 8080
CMD ["sh", "-c", "exec crgrpc serve --port ${PORT}"]
