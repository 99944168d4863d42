import json

from ninja.parser import Parser


class JSONObjectParser(Parser):
    """Request bodies are JSON objects; `[1, 2]` or `null` is refused instead of read as an empty body."""

    def parse_body(self, request):
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("the request body is not a JSON object")
        return data
