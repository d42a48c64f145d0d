"""The embedded reference gateway.

``gateway.sip`` is imported first: it chooses, once, between the compiled build of the SIP modules and their
Python source (``gateway.sip._compiled``), before any module of the build can be imported from here.
"""

import gateway.sip  # noqa: F401  (chooses the build; see above)
