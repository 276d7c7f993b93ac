from bench.soak import BEGIN, END, carry, with_block

BENCH = '# Benchmarks\n\n| section | ... |\n'


def test_the_soak_writes_its_block_once_and_make_bench_keeps_it():
    once = with_block(BENCH, 'figures 1')
    assert once.startswith(BENCH.rstrip('\n')) and once.count(BEGIN) == once.count(END) == 1
    twice = with_block(once, 'figures 2')
    assert 'figures 1' not in twice and 'figures 2' in twice and twice.count(BEGIN) == 1
    regenerated = carry(twice, '# Benchmarks\n\n| new table |\n')
    assert regenerated.startswith('# Benchmarks\n\n| new table |')
    assert regenerated.count(BEGIN) == 1 and 'figures 2' in regenerated
    assert carry('# no soak yet\n', BENCH) == BENCH
