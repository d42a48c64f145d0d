"""Evidence and reports: the matrix as data (``model``), rendered as ``matrix.html`` (``html``) and JUnit XML
(``junit``); SIP ladders (``ladder``), evidence files (``evidence``) and run comparison (``diff``)."""
