"""skar: scikit-learn-compatible autoregressive density estimators on PyTorch.

Every estimator models ``p(x) = prod_i p(x_i | x_<i)`` and has the API of
:class:`sklearn.neighbors.KernelDensity`: ``fit``, ``score_samples``, ``score`` and ``sample``.
"""

from .anomaly import DensityOutlierDetector
from .ensemble import DensityEnsemble
from .models.cdf import CDFDensity
from .models.docnade import DocNADEDensity
from .models.made import MADEDensity
from .models.masde import MASDEDensity
from .models.nade import NADEDensity, RNADEDensity
from .models.pixelcnn import PixelCNNDensity
from .models.pixelrnn import PixelRNNDensity
from .models.rnn import RNNDensity
from .models.transformer import ARTransformerDensity
from .models.wavenet import WaveNetDensity

__version__ = "0.1.0"

__all__ = ["ARTransformerDensity", "CDFDensity", "DensityEnsemble", "DensityOutlierDetector",
           "DocNADEDensity",
           "MADEDensity", "MASDEDensity", "NADEDensity", "PixelCNNDensity", "PixelRNNDensity",
           "RNADEDensity",
           "RNNDensity", "WaveNetDensity", "__version__"]
