"""The root of senti's exceptions.

Every error senti raises on purpose derives from :class:`SentiError`, so a
caller can catch "anything senti reports" with one ``except`` clause while a
bug (``TypeError``, ``KeyError``...) still surfaces. The tree::

    SentiError                          raised when...
    ├── CliError                        the command line or environment is unusable (flows.cli)
    ├── InvalidQuery (ValueError)       a query cannot be parsed (flows.routing.matching)
    ├── ThresholdsError (ValueError)    a thresholds file is unusable (flows.analysis.sentiment)
    ├── TweetEvalError (ValueError)     TweetEval files are unusable (flows.tuning.tweeteval)
    ├── RuleError (ValueError)          a query exceeds X's rule limits (flows.platforms.x_rules)
    ├── RecoveryError                   the recovery directory is unusable (flows.runtime.recovery)
    ├── CaptureError                    an X capture cannot start or fails (flows.sources.capture)
    ├── StoreError                      a store cannot be opened, read or written (flows.store)
    ├── SourceError                     a source cannot go on (flows.sources.control)
    │   ├── XSourceError                ... the X source (RuleRejected, XApiError, XStreamFailed)
    │   └── JetstreamError              ... the Bluesky source (JetstreamRefused)
    ├── SourceFailed                    a runner reports a source's end (flows.sources.control)
    ├── ProtocolError (ValueError)      a websocket client message is rejected (server.protocol)
    ├── DataflowFailed                  the server's dataflow ended with an error (server.app)
    └── StoreUnavailable                the dashboard cannot read the store (dashboard.data)

Control flow (:class:`flows.sources.control.Interrupted`) is not an error and
stays outside the tree.
"""

from __future__ import annotations

__all__ = ["SentiError"]


class SentiError(Exception):
    """Root of every error senti raises on purpose; its message is meant for the user."""
