"""What t/htdocs/ws/chaos-echo sends, sorted as it arrives: the echo
"ec<i>" of each "c<i>" the client sends, and the script's own stream
"s<i>", each numbered from 1; anything else is kept apart.  Used by
chaos.py and survival.py to check both streams exact."""


class Streams:
    def __init__(self, n):
        self.n = n
        self.echoes, self.stream, self.other = [], [], []

    async def read(self, session):
        """Receive until n echoes and n stream messages have arrived."""
        while len(self.echoes) < self.n or len(self.stream) < self.n:
            m = await session.recv()
            if m.startswith("ec"):
                self.echoes.append(int(m[2:]))
            elif m.startswith("s"):
                self.stream.append(int(m[1:]))
            else:
                self.other.append(m)

    def exact(self, got):
        return got == list(range(1, self.n + 1))
