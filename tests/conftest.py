from rlpfn.threads import use_one_thread

use_one_thread()
