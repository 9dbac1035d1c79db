"""Webhook function: the labeling vendors' callbacks over HTTP (/scale, /labelstudio)."""

import flask
import functions_framework

from framesift.runtime import callbacks


@functions_framework.http
def receive_callback(request: flask.Request) -> flask.Response:
    reply = callbacks().receive_request(request)
    return flask.make_response(flask.jsonify(reply.body), reply.status)
