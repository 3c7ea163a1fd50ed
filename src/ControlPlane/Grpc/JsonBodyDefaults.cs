namespace Gateway.ControlPlane.Grpc;

/// <summary>
/// The HTTP/JSON API reads every request body as JSON. curl, the client the README shows, labels <c>-d '{…}'</c>
/// as <c>application/x-www-form-urlencoded</c> and sends no body (and no type) for <c>-X POST</c> alone, which JSON
/// transcoding refuses ("request content type … is not a known JSON content type"). So a body of the API
/// (<c>/v1/…</c>, POST/PATCH/PUT) without a type or with the form type is read as JSON, and an empty one as <c>{}</c>.
/// Any other declared type is left alone (and refused by transcoding as before).
/// </summary>
public static class JsonBodyDefaults
{
    public static IApplicationBuilder UseJsonBodyDefaults(this IApplicationBuilder app) => app.Use((context, next) =>
    {
        var request = context.Request;
        if (request.Path.StartsWithSegments("/v1", StringComparison.Ordinal)
            && (HttpMethods.IsPost(request.Method) || HttpMethods.IsPatch(request.Method) || HttpMethods.IsPut(request.Method))
            && (string.IsNullOrEmpty(request.ContentType)
                || request.ContentType.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase)))
        {
            request.ContentType = "application/json";
            if (request.ContentLength is null or 0 && !request.Headers.ContainsKey("Transfer-Encoding"))
            {
                request.Body = new MemoryStream("{}"u8.ToArray(), writable: false);
                request.ContentLength = 2;
            }
        }

        return next(context);
    });
}
