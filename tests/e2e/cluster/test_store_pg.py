"""The store on PostgreSQL: tests written for the embedded SQLite store run again with every esg
on a database of its own on a PostgreSQL server of the test's own (ESG_TEST_POSTGRES), so that
both dialects keep the same behaviour: REST provisioning (codes unique, ids, PUT/PATCH/DELETE),
registrations, CDRs of calls and a reload."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, ".."))
from postgres_fixture import Postgres  # noqa: E402

SERVER = None


def setUpModule():
    global SERVER
    SERVER = Postgres().start()
    os.environ["ESG_TEST_POSTGRES"] = SERVER.url


def tearDownModule():
    os.environ.pop("ESG_TEST_POSTGRES", None)
    # Proof that the tests ran on PostgreSQL: every esg made a database of its own.
    made = int(SERVER.query("SELECT count(*) FROM pg_database WHERE datname LIKE 'esg_%'"))
    SERVER.stop()
    if made < 3:
        SERVER.cleanup(keep=True)
        raise AssertionError("only %d esg database(s) on PostgreSQL" % made)
    SERVER.cleanup(keep=False)


from accounts.test_rest import ProvidersRest  # noqa: E402,F401
from accounts.test_registration import KamailioRegistrar  # noqa: E402,F401
from server.test_reload import *  # noqa: E402,F401,F403
