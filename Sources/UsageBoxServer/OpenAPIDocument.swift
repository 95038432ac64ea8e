/// The OpenAPI 3 description served at `GET /openapi.yaml`: `openapi.yaml` beside this file,
/// compiled in. It is the source of the routes (see `APIOperation`); `scripts/api-fuzz` runs
/// schemathesis against a live server to keep the answers true to its shapes.
enum OpenAPIDocument {
    static let yaml = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
}
