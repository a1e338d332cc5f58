"""The variables the `emeuse` command and deploy/kafka/kafka.sh read, besides the services'
(emeuse.runtime.settings): declared here so docs/settings.md lists them (`make docs`)."""

from emeuse.runtime.settings import Setting

TOOL_SETTINGS = (
    Setting(
        "EMEUSE_KAFKA_PARTNER_BOOTSTRAP",
        "127.0.0.1:9094",
        "the partner listener, written into each partner's settings file",
    ),
    Setting(
        "EMEUSE_PARTNER_SECRETS_DIR",
        ".local/secrets/partners",
        "where `emeuse partner add` writes `<id>.properties` (mode 0600)",
    ),
    Setting(
        "EMEUSE_OPERATOR_TOKEN_FILE",
        ".local/secrets/operator.token",
        "the operator's gRPC token, for `emeuse consent` and `emeuse partner replay`",
    ),
    Setting("EMEUSE_TERRITORY", "none", "territory stamped on registry events (`--territory`)"),
    Setting("KAFKA_PORT", "9092", "the broker's platform listener (`kafka.sh`)"),
    Setting("KAFKA_CONTROLLER_PORT", "9093", "the broker's KRaft controller listener (`kafka.sh`)"),
    Setting("KAFKA_PARTNER_PORT", "9094", "the broker's SASL listener for partners (`kafka.sh`)"),
)
