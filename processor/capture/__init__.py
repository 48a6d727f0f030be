"""Event Hubs Capture: the Avro files a long-lived projection is rebuilt from (an adapter, beside `hub`).

Capture writes each partition's events to Blob Storage as Avro object container files of records `EventData`
(SequenceNumber, Offset, EnqueuedTimeUtc, SystemProperties, Properties, Body), one file per partition and time
window, named by a format such as `{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/
{Second}.avro`. This package lists them (a local folder, or a blob container URL), reads them in partition and
sequence order and yields each record's body for the streaming ingest (`processor.ingest.ingest_messages`):

    layout.py   the file name format -> which (namespace, hub, partition, time) a file holds; their order
    reader.py   the records of the files, in order; empty and corrupt files; where each partition ended
    source.py   what the reader and the sources share: the errors, the Source protocol
    local.py    the files of a local folder
    blob.py     the files of a blob container (the Azure SDK, imported only for a URL)

Imports `processor.config` and fastavro; the Azure storage SDK only in blob.py, when a URL is read.
"""

from processor.capture.reader import CaptureReader, CaptureReport, open_capture
from processor.capture.source import CaptureCorrupt, CaptureError

__all__ = ["CaptureCorrupt", "CaptureError", "CaptureReader", "CaptureReport", "open_capture"]
