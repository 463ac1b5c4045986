"""Values: how a value becomes bytes and back (``serialization``), the ObjectRef users
hold (``object_ref``) and the stream behind a generator's refs (``stream``)."""
