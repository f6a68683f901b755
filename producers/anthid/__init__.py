"""`tradebus produce anthid`: the Anthid gRPC event stream (contract C) onto Kafka."""
