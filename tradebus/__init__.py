"""tradebus: HTI trade ideas and Anthid broker events onto Apache Kafka."""

import warnings

# confluent-kafka's schema-registry client imports authlib's httpx module,
# which warns on import; the warning is about authlib internals, not us.
try:  # authlib installs an "always" filter for its warnings on import; ours must come after it
    import authlib.deprecate  # noqa: F401
except ImportError:  # pragma: no cover
    pass
warnings.filterwarnings("ignore", message=".*httpx module is deprecated.*")

__version__ = "0.1.0"
